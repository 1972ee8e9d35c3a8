/* stub: being written */
typedef int rpc_placeholder;
