/* stub: being written */
typedef int listener_placeholder;
