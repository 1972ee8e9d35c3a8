/* clawgate: argv -> the command table (CLI), or the daemon. */
#include "config.h"

#include "cli/cli.h"
#include "secrets/secrets.h"

int main(int argc, char **argv)
{
	/* CLI commands resolve gateway auth refs only; the daemon widens
	 * this to every surface. */
	secrets_install(SECRETS_SCOPE_AUTH, NULL);
	return cli_main(argc, argv);
}
