/* stub: being written */
typedef int daemon_placeholder;
