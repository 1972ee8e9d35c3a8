/* stub: being written */
typedef int json5_placeholder;
