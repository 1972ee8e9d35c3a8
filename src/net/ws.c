/* stub: being written */
typedef int ws_placeholder;
