/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hello message (docs/protocol.md; built by common/proto) and the facts
 * it carries: boot id, uptime, interface addresses, labels. Runs in the agent; reads only local
 * files of the kernel.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <unistd.h>

#include "agent_int.h"
#include "atomicfile.h"

#define ADDRESSES_MAX 32
#define LABELS_MAX 64

char *
agent_hello_build(const struct agent_hello *h, size_t *len)
{
	struct proto_error err;
	json_t *fields, *addrs, *inv;

	addrs = h->addresses != NULL ? json_incref(h->addresses) : json_array();
	inv = h->inventory != NULL ? json_incref(h->inventory) : json_object();
	fields = json_pack(
		"{s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:s, s:o}",
		"agent_version",
		h->agent_version != NULL ? h->agent_version : "", "fw_version",
		h->fw_version != NULL ? h->fw_version : "", "model",
		h->model != NULL ? h->model : "", "boot_id",
		h->boot_id != NULL ? h->boot_id : "", "uptime",
		(json_int_t)(h->uptime < 0 ? 0 : h->uptime), "addresses", addrs,
		"config_version", (json_int_t)h->config_version, "config_hash",
		h->config_hash != NULL ? h->config_hash : "", "inventory", inv);
	if (fields == NULL)
		return NULL; /* json_pack released the "o" references */
	/* Update facts (update.c, keyset.c): only when there are some. */
	if (h->fw_version_num > 0)
		json_object_set_new(
			fields, "fw_version_num",
			json_integer((json_int_t)h->fw_version_num));
	if (h->keyset_version > 0)
		json_object_set_new(
			fields, "keyset_version",
			json_integer((json_int_t)h->keyset_version));
	return proto_encode(PROTO_HELLO, fields, len, &err);
}

json_t *
agent_addresses(void)
{
	struct ifaddrs *ifs = NULL, *i;
	json_t *arr = json_array();
	char buf[INET6_ADDRSTRLEN];
	const void *a;

	if (arr == NULL || getifaddrs(&ifs) != 0)
		return arr;
	for (i = ifs; i != NULL && json_array_size(arr) < ADDRESSES_MAX;
	     i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_flags & IFF_LOOPBACK) ||
		    !(i->ifa_flags & IFF_UP))
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)
				      i->ifa_addr)
				     ->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)(const void *)
				      i->ifa_addr)
				     ->sin6_addr;
		else
			continue;
		if (inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)) !=
		    NULL)
			json_array_append_new(arr, json_string(buf));
	}
	freeifaddrs(ifs);
	return arr;
}

json_t *
agent_inventory(bool simulated)
{
	struct utsname u;
	json_t *inv = json_object();

	if (inv == NULL)
		return NULL;
	if (uname(&u) == 0) {
		json_object_set_new(inv, "hostname", json_string(u.nodename));
		json_object_set_new(inv, "os", json_string(u.sysname));
		json_object_set_new(inv, "kernel", json_string(u.release));
		json_object_set_new(inv, "arch", json_string(u.machine));
	}
	if (simulated)
		json_object_set_new(inv, "simulated", json_true());
	return inv;
}

/*
 * Reads a small file into buf. Files in /proc report size 0, so this reads
 * until EOF instead of trusting st_size (read_file_bounded does).
 */
static int
read_proc(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return -1;
	for (i = 0; i < 16 && len + 1 < cap; i++) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

int
agent_read_boot_id(const char *path, char out[SECRET_UUID_LEN])
{
	char text[128];
	size_t len;

	if (read_proc(path, text, sizeof(text)) != 0)
		return -1;
	len = strcspn(text, "\r\n ");
	text[len] = '\0';
	if (!secret_is_uuid(text))
		return -1;
	memcpy(out, text, SECRET_UUID_LEN);
	return 0;
}

int64_t
agent_system_uptime(void)
{
	char text[128], *end;
	double up;

	if (read_proc("/proc/uptime", text, sizeof(text)) != 0)
		return -1;
	up = strtod(text, &end);
	return end == text || up < 0 ? -1 : (int64_t)up;
}

static bool
label_key_ok(const char *k, size_t n)
{
	size_t i;

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '/' || c == '-'))
			return false;
	}
	return true;
}

int
agent_labels_parse(const char *text, json_t **out, char *err, size_t errlen)
{
	json_t *obj = json_object();
	const char *p = text, *comma, *eq;
	char key[64], val[256];
	size_t klen, vlen;
	int n = 0;

	if (obj == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (p != NULL && *p != '\0') {
		comma = strchr(p, ',');
		eq = memchr(p, '=',
			    comma != NULL ? (size_t)(comma - p) : strlen(p));
		if (eq == NULL || ++n > LABELS_MAX)
			goto bad;
		klen = (size_t)(eq - p);
		vlen = comma != NULL ? (size_t)(comma - eq - 1)
				     : strlen(eq + 1);
		if (!label_key_ok(p, klen) || vlen >= sizeof(val))
			goto bad;
		memcpy(key, p, klen);
		key[klen] = '\0';
		memcpy(val, eq + 1, vlen);
		val[vlen] = '\0';
		if (json_object_set_new(obj, key, json_string(val)) != 0)
			goto bad;
		p = comma != NULL ? comma + 1 : NULL;
	}
	*out = obj;
	return 0;
bad:
	snprintf(err, errlen,
		 "labels must be k=v,k=v (keys [A-Za-z0-9._/-]{1,63}, values "
		 "up to 255 bytes of UTF-8)");
	json_decref(obj);
	return -1;
}
