/* Unit tests for src/service: unit writers (escaping, refusals), drift,
 * discovery against fixture dirs, the kept token, sd_notify datagrams, the
 * systemctl runner with a stand-in, port owners and the doctor table. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "core/common.h"
#include "service/service.h"

static char tmpl[] = "/tmp/clawgate-svc-XXXXXX";
static char *tmp;

static void setup(void)
{
	strcpy(tmpl, "/tmp/clawgate-svc-XXXXXX");
	tmp = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmp);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static const struct service_spec spec = {
	.binary = "/opt/claw gate/bin/clawgate",
	.port = 18789,
	.state_dir = "/home/u/.openclaw",
	.config_path = "/home/u/.openclaw/openclaw.json",
	.home = "/home/u",
	.path_env = "/usr/bin:/bin",
};

START_TEST(test_unit_systemd)
{
	char *err = NULL, *t = service_unit_render(SERVICE_SYSTEMD, &spec, &err);

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(strstr(t, "\nExecStart=\"/opt/claw gate/bin/"
				     "clawgate\" gateway run --port 18789\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nType=notify\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nRestartPreventExitStatus=78\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nEnvironment=OPENCLAW_SYSTEMD_UNIT="
				     "openclaw-gateway.service\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nWantedBy=default.target\n"));
	ck_assert_ptr_null(strstr(t, "User="));
	free(t);
}
END_TEST

START_TEST(test_unit_escaping_and_refusals)
{
	struct service_spec s = spec;
	char *err = NULL, *t;

	s.state_dir = "/srv/100%/state";
	s.profile = "work";
	s.system = 1;
	s.user = "gw";
	t = service_unit_render(SERVICE_SYSTEMD, &s, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(strstr(t, "Environment=OPENCLAW_STATE_DIR="
				     "/srv/100%%/state\n"));
	ck_assert_ptr_nonnull(strstr(t, "OPENCLAW_SYSTEMD_UNIT="
				     "openclaw-gateway-work.service"));
	ck_assert_ptr_nonnull(strstr(t, "\nUser=gw\n"));
	ck_assert_ptr_nonnull(strstr(t, "WantedBy=multi-user.target"));
	free(t);
	s = spec;
	s.binary = "clawgate";
	ck_assert_ptr_null(service_unit_render(SERVICE_SYSTEMD, &s, &err));
	ck_assert_ptr_nonnull(strstr(err, "absolute"));
	free(err);
	s = spec;
	s.home = "/home/u\nExecStartPre=/bin/evil";
	ck_assert_ptr_null(service_unit_render(SERVICE_SYSTEMD, &s, &err));
	ck_assert_ptr_nonnull(strstr(err, "line breaks"));
	free(err);
	s = spec;
	s.port = 0;
	ck_assert_ptr_null(service_unit_render(SERVICE_LAUNCHD, &s, &err));
	free(err);
}
END_TEST

START_TEST(test_unit_launchd_schtasks_names)
{
	struct service_spec s = spec;
	char *err = NULL, *t, *n;

	s.home = "/home/<u>&";
	t = service_unit_render(SERVICE_LAUNCHD, &s, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(strstr(t, "<string>/home/&lt;u&gt;&amp;"
				     "</string>"));
	ck_assert_ptr_nonnull(strstr(t, "<string>ai.openclaw.gateway"
				     "</string>"));
	free(t);
	t = service_unit_render(SERVICE_SCHTASKS, &s, &err);
	ck_assert_ptr_nonnull(strstr(t, "<Command>/opt/claw gate/bin/clawgate"
				     "</Command>"));
	free(t);
	n = service_unit_name(SERVICE_LAUNCHD, "work");
	ck_assert_str_eq(n, "ai.openclaw.work");
	free(n);
	n = service_unit_name(SERVICE_SYSTEMD, "Default");
	ck_assert_str_eq(n, "openclaw-gateway.service");
	free(n);
	n = service_unit_name(SERVICE_SCHTASKS, "x");
	ck_assert_str_eq(n, "OpenClaw Gateway (x)");
	free(n);
	ck_assert_int_eq(service_target_parse("launchd"), SERVICE_LAUNCHD);
	ck_assert_int_eq(service_target_parse("upstart"), -1);
}
END_TEST

START_TEST(test_drift)
{
	struct service_spec s = spec;
	char *err = NULL, *a, *b;
	json_t *d;

	a = service_unit_render(SERVICE_SYSTEMD, &spec, &err);
	d = service_drift(a, a);
	ck_assert_int_eq(json_array_size(d), 0);
	json_decref(d);
	s.port = 19000;
	b = service_unit_render(SERVICE_SYSTEMD, &s, &err);
	d = service_drift(a, b);
	ck_assert_int_eq(json_array_size(d), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(d, 0), "field")), "ExecStart");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(d, 1), "field")),
			 "Environment");
	json_decref(d);
	d = service_drift("garbage\n=\nExecStart", b);
	ck_assert_int_ge(json_array_size(d), 1);
	json_decref(d);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_scan_fixture_dirs)
{
	char *user = xasprintf("%s/xdg/systemd/user", tmp);
	char *sys = xasprintf("%s/system", tmp), *p, *x;
	json_t *found;

	x = xasprintf("%s/xdg", tmp);
	ck_assert_int_eq(service_mkdirs(user, 0755), 0);
	ck_assert_int_eq(service_mkdirs(sys, 0755), 0);
	setenv("XDG_CONFIG_HOME", x, 1);
	setenv("CLAWGATE_SYSTEM_UNIT_DIR", sys, 1);
	p = xasprintf("%s/openclaw-gateway.service", user);
	write_file(p, "[Service]\nExecStart=/usr/bin/clawgate gateway run\n"
		      "Environment=OPENCLAW_SERVICE_MARKER=openclaw\n"
		      "Environment=OPENCLAW_SERVICE_KIND=gateway\n");
	free(p);
	p = xasprintf("%s/bot.service", user);
	write_file(p, "[Service]\nExecStart=/opt/moltbot/run gateway\n");
	free(p);
	p = xasprintf("%s/gatewayish.service", user);
	write_file(p, "[Service]\nExecStart=/usr/bin/openclaw-gateway-proxy\n");
	free(p);
	p = xasprintf("%s/notes.txt", sys);
	write_file(p, "openclaw gateway\n");
	free(p);
	found = service_scan_extra("openclaw-gateway.service");
	ck_assert_int_eq(json_array_size(found), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(found, 0), "label")),
			 "bot.service");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(found, 0), "marker")),
			 "moltbot");
	ck_assert(json_is_true(json_object_get(json_array_get(found, 0),
					       "legacy")));
	json_decref(found);
	found = service_scan_extra(NULL);
	ck_assert_int_eq(json_array_size(found), 2);
	json_decref(found);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("CLAWGATE_SYSTEM_UNIT_DIR");
	free(user);
	free(sys);
	free(x);
}
END_TEST

START_TEST(test_token_file)
{
	char *tok = NULL, *p;
	struct stat st;

	ck_assert_int_eq(service_token_read(tmp, &tok), 0);
	ck_assert_int_eq(service_token_write(tmp, "abc-DEF_123"), 0);
	p = service_token_path(tmp);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(service_token_read(tmp, &tok), 1);
	ck_assert_str_eq(tok, "abc-DEF_123");
	xfree_secret(tok);
	write_file(p, "\n");
	ck_assert_int_eq(service_token_read(tmp, &tok), -EINVAL);
	write_file(p, "a\nb\n");
	ck_assert_int_eq(service_token_read(tmp, &tok), -EINVAL);
	free(p);
	tok = service_token_generate();
	ck_assert_uint_eq(strlen(tok), 43);
	xfree_secret(tok);
}
END_TEST

static int notify_socket(const char *path, int abstract)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(path));
	if (abstract)
		sa.sun_path[0] = '\0';
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

START_TEST(test_notify)
{
	char *path = xasprintf("%s/notify", tmp), buf[256], want[64];
	char *abs_name;
	ssize_t n;
	int fd = notify_socket(path, 0);

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(service_notify("READY=1"), -1);
	setenv("NOTIFY_SOCKET", path, 1);
	service_notify_ready("ready");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "READY=1\nMAINPID=%d\n", (int)getpid());
	ck_assert_ptr_eq(strstr(buf, want), buf);
	service_notify_reloading();
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n] = '\0';
	ck_assert_ptr_eq(strstr(buf, "RELOADING=1\nMONOTONIC_USEC="), buf);
	service_notify_stopping();
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n] = '\0';
	ck_assert_ptr_eq(strstr(buf, "STOPPING=1"), buf);
	close(fd);
	abs_name = xasprintf("@clawgate-test-%d", (int)getpid());
	fd = notify_socket(abs_name, 1);
	setenv("NOTIFY_SOCKET", abs_name, 1);
	ck_assert_int_eq(service_notify("WATCHDOG=1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "WATCHDOG=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
	free(abs_name);
	free(path);
}
END_TEST

START_TEST(test_systemctl_runner)
{
	char *bin = xasprintf("%s/bin", tmp), *ctl, *out = NULL, *old;
	const char *args[] = {"is-active", "x.service", NULL};
	char *path;

	ck_assert_int_eq(service_mkdirs(bin, 0755), 0);
	ctl = xasprintf("%s/systemctl", bin);
	write_file(ctl, "#!/bin/sh\necho \"args: $*\"\necho oops >&2\n"
		   "exit 3\n");
	chmod(ctl, 0755);
	old = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	path = xasprintf("%s:%s", bin, old);
	setenv("PATH", path, 1);
	ck_assert_int_eq(service_systemctl(0, args, &out), 3);
	ck_assert_str_eq(out, "args: --user is-active x.service\noops");
	free(out);
	ck_assert_int_eq(service_systemctl(1, args, &out), 3);
	ck_assert_ptr_eq(strstr(out, "args: is-active"), out);
	free(out);
	setenv("PATH", tmp, 1);
	ck_assert_int_eq(service_systemctl(0, args, &out), 127);
	free(out);
	setenv("PATH", old, 1);
	free(old);
	free(path);
	free(ctl);
	free(bin);
}
END_TEST

START_TEST(test_port_listeners)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	json_t *ls;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	ls = service_port_listeners(ntohs(sa.sin_port));
	ck_assert_int_eq(json_array_size(ls), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(ls, 0), "pid")), getpid());
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
		json_array_get(ls, 0), "address")), "127.0.0.1:"));
	json_decref(ls);
	close(fd);
	ls = service_port_listeners(ntohs(sa.sin_port));
	ck_assert_int_eq(json_array_size(ls), 0);
	json_decref(ls);
}
END_TEST

START_TEST(test_doctor_table_ids)
{
	size_t n, i, j;
	const char *const *ids = service_doctor_ids(&n);

	ck_assert_uint_ge(n, 13);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			ck_assert_str_ne(ids[i], ids[j]);
}
END_TEST

START_TEST(test_doctor_weak_token_and_modes)
{
	struct service_doctor d = {0};
	char *cfg = xasprintf("%s/openclaw.json", tmp);
	json_t *f;
	size_t i;
	int weak = 0, mode = 0, plain = 0;

	write_file(cfg, "{gateway: {auth: {token: 'short'}}}");
	chmod(cfg, 0644);
	d.state_dir = tmp;
	d.config_path = cfg;
	d.port = 1;
	d.configured_token = "short";
	d.gateway_token = "short";
	service_doctor_load_raw(&d);
	ck_assert_ptr_nonnull(d.raw);
	service_doctor_run(&d);
	json_array_foreach(d.findings, i, f) {
		const char *id = json_string_value(json_object_get(f, "id"));

		weak += strcmp(id, "auth.weak-token") == 0;
		mode += strcmp(id, "state.file-mode") == 0;
		plain += strcmp(id, "secrets.plaintext") == 0;
	}
	ck_assert_int_eq(weak, 1);
	ck_assert_int_eq(mode, 1);
	ck_assert_int_eq(plain, 1);
	json_decref(d.findings);
	d.findings = NULL;
	d.fix = 1;
	service_doctor_run(&d);
	json_array_foreach(d.findings, i, f) {
		if (strcmp(json_string_value(json_object_get(f, "id")),
			   "state.file-mode") == 0)
			ck_assert(json_is_true(json_object_get(f, "fixed")));
	}
	json_decref(d.findings);
	json_decref(d.raw);
	free(cfg);
}
END_TEST

static Suite *service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unit_systemd);
	tcase_add_test(tc, test_unit_escaping_and_refusals);
	tcase_add_test(tc, test_unit_launchd_schtasks_names);
	tcase_add_test(tc, test_drift);
	tcase_add_test(tc, test_scan_fixture_dirs);
	tcase_add_test(tc, test_token_file);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_systemctl_runner);
	tcase_add_test(tc, test_port_listeners);
	tcase_add_test(tc, test_doctor_table_ids);
	tcase_add_test(tc, test_doctor_weak_token_and_modes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(service_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
