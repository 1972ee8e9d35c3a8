/* stub: being written */
typedef int store_placeholder;
