/* stub: being written */
typedef int presence_placeholder;
