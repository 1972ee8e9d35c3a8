/* stub: being written */
typedef int api_placeholder;
