/* stub: being written */
typedef int http_placeholder;
