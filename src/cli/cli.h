/* Operator commands: `clawgate <command> ...`, a table of commands. */
#pragma once

int cli_main(int argc, char **argv);
