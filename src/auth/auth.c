/* stub: being written */
typedef int auth_placeholder;
