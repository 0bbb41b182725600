/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RFC 6455 server side on plain buffers (see ws.h). Runs on a net worker's
 * event loop; everything it reads comes from the network and is bounded
 * before use.
 */
#include "channel/ws.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- the upgrade request ------------------------------------------------ */

struct ws_request {
	bool host, upgrade, connection, version13, version_seen, protocol;
	bool body;
	int keys;
	char key[32];
};

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
equal_nocase(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		if (ascii_lower((unsigned char)a[i]) !=
		    ascii_lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

/* Whether the comma-separated list v (vlen bytes) holds token. */
static bool
list_has(const char *v, size_t vlen, const char *token, bool nocase)
{
	size_t i = 0;

	while (i < vlen) {
		size_t start, end;

		while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < vlen && v[i] != ',')
			i++;
		end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end > start &&
		    (nocase ? equal_nocase(v + start, end - start, token)
			    : (end - start == strlen(token) &&
			       memcmp(v + start, token, end - start) == 0)))
			return true;
	}
	return false;
}

static bool
tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A Sec-WebSocket-Key is base64 of 16 bytes: 22 characters and "==". */
static bool
key_ok(const char *v, size_t vlen)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";

	if (vlen != 24 || v[22] != '=' || v[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		if (v[i] == '\0' || strchr(b64, v[i]) == NULL)
			return false;
	}
	return true;
}

static enum ws_rc
refuse(struct ws_upgrade *out, int status, const char *why)
{
	out->status = status;
	out->why = why;
	return WS_REFUSED;
}

/* One header line (without CRLF). */
static enum ws_rc
request_header(struct ws_request *r, const char *line, size_t len,
	       const char *protocol, struct ws_upgrade *out)
{
	size_t colon = 0, vs, ve;

	if (len == 0 || line[0] == ' ' || line[0] == '\t')
		return refuse(out, 400, "obsolete line folding");
	while (colon < len && tchar((unsigned char)line[colon]))
		colon++;
	if (colon == 0 || colon >= len || line[colon] != ':')
		return refuse(out, 400, "malformed header line");
	vs = colon + 1;
	ve = len;
	for (size_t i = vs; i < ve; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return refuse(out, 400,
				      "control character in a header");
	}
	while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
		vs++;
	while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
		ve--;
	if (equal_nocase(line, colon, "host")) {
		if (r->host)
			return refuse(out, 400, "more than one Host");
		r->host = ve > vs;
	} else if (equal_nocase(line, colon, "upgrade")) {
		r->upgrade = r->upgrade ||
			     list_has(line + vs, ve - vs, "websocket", true);
	} else if (equal_nocase(line, colon, "connection")) {
		r->connection = r->connection ||
				list_has(line + vs, ve - vs, "upgrade", true);
	} else if (equal_nocase(line, colon, "sec-websocket-version")) {
		r->version_seen = true;
		r->version13 = ve - vs == 2 && memcmp(line + vs, "13", 2) == 0;
	} else if (equal_nocase(line, colon, "sec-websocket-key")) {
		if (++r->keys > 1 || !key_ok(line + vs, ve - vs))
			return refuse(out, 400, "bad Sec-WebSocket-Key");
		memcpy(r->key, line + vs, ve - vs);
		r->key[ve - vs] = '\0';
	} else if (equal_nocase(line, colon, "sec-websocket-protocol")) {
		r->protocol = r->protocol ||
			      list_has(line + vs, ve - vs, protocol, false);
	} else if (equal_nocase(line, colon, "content-length") ||
		   equal_nocase(line, colon, "transfer-encoding")) {
		r->body = true;
	}
	return WS_OK;
}

static int
accept_value(const char *key, char *out, size_t outlen)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char input[64];
	int n;

	n = snprintf(input, sizeof(input), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(input) || outlen < 29)
		return -1;
	if (EVP_Digest(input, (size_t)n, digest, &dlen, EVP_sha1(), NULL) !=
		    1 ||
	    dlen != 20)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, digest, 20) == 28 ? 0 : -1;
}

enum ws_rc
ws_upgrade_parse(const unsigned char *buf, size_t len, const char *path,
		 const char *protocol, struct ws_upgrade *out)
{
	const char *text = (const char *)buf;
	struct ws_request r;
	size_t end = 0, line_start, line_end, sp1, sp2;
	size_t limit = len < WS_REQUEST_MAX ? len : WS_REQUEST_MAX;
	bool found = false;

	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i + 3 < limit; i++) {
		if (memcmp(text + i, "\r\n\r\n", 4) == 0) {
			end = i;
			found = true;
			break;
		}
	}
	if (!found)
		return len >= WS_REQUEST_MAX
			       ? refuse(out, 431, "request header too large")
			       : WS_MORE;
	for (size_t i = 0; i < end; i++) {
		if (text[i] == '\0')
			return refuse(out, 400, "NUL in the request");
	}
	/* The request line: METHOD SP TARGET SP VERSION. */
	line_end = 0;
	while (line_end < end && text[line_end] != '\r')
		line_end++;
	sp1 = 0;
	while (sp1 < line_end && text[sp1] != ' ')
		sp1++;
	sp2 = sp1 + 1;
	while (sp2 < line_end && text[sp2] != ' ')
		sp2++;
	if (sp1 == 0 || sp1 >= line_end || sp2 >= line_end)
		return refuse(out, 400, "malformed request line");
	if (sp1 != 3 || memcmp(text, "GET", 3) != 0)
		return refuse(out, 405, "only GET is served here");
	if (sp2 - sp1 - 1 != strlen(path) ||
	    memcmp(text + sp1 + 1, path, sp2 - sp1 - 1) != 0)
		return refuse(out, 404,
			      "the device listener serves only the "
			      "agent channel");
	if (line_end - sp2 - 1 != 8 || memcmp(text + sp2 + 1, "HTTP/1.1", 8))
		return refuse(out, 505, "HTTP/1.1 only");
	/* Header lines. */
	line_start = line_end + 2;
	while (line_start < end + 2) {
		enum ws_rc rc;

		line_end = line_start;
		while (line_end < end && text[line_end] != '\r')
			line_end++;
		if (line_end < end && text[line_end + 1] != '\n')
			return refuse(out, 400, "bare CR in the request");
		rc = request_header(&r, text + line_start,
				    line_end - line_start, protocol, out);
		if (rc != WS_OK)
			return rc;
		line_start = line_end + 2;
	}
	if (r.body)
		return refuse(out, 400, "an upgrade request has no body");
	if (!r.host)
		return refuse(out, 400, "no Host");
	if (!r.upgrade || !r.connection)
		return refuse(out, 426, "the agent channel is a websocket");
	if (!r.version13)
		return refuse(out, 426, "Sec-WebSocket-Version 13 required");
	if (r.keys != 1)
		return refuse(out, 400, "no Sec-WebSocket-Key");
	if (!r.protocol)
		return refuse(out, 400, "subprotocol fleet.v1 required");
	if (accept_value(r.key, out->accept, sizeof(out->accept)) != 0)
		return refuse(out, 500, "cannot compute the accept key");
	out->consumed = end + 4;
	return WS_OK;
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

size_t
ws_upgrade_answer(const struct ws_upgrade *u, enum ws_rc rc,
		  const char *protocol, char *out, size_t outlen)
{
	char body[256];
	int n, blen;

	if (rc == WS_OK) {
		n = snprintf(out, outlen,
			     "HTTP/1.1 101 Switching Protocols\r\n"
			     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Sec-WebSocket-Accept: %s\r\n"
			     "Sec-WebSocket-Protocol: %s\r\n\r\n",
			     u->accept, protocol);
		return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
	}
	blen = snprintf(body, sizeof(body),
			"{\"type\":\"about:blank\",\"title\":\"%s\","
			"\"status\":%d,\"detail\":\"%s\"}",
			reason_phrase(u->status), u->status, u->why);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return 0;
	n = snprintf(out, outlen,
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: application/problem+json\r\n"
		     "Content-Length: %d\r\n%s%s"
		     "Connection: close\r\n\r\n%s",
		     u->status, reason_phrase(u->status), blen,
		     u->status == 405 ? "Allow: GET\r\n" : "",
		     u->status == 426 ? "Upgrade: websocket\r\n"
					"Sec-WebSocket-Version: 13\r\n"
				      : "",
		     body);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

/* ---- frames ----------------------------------------------------------- */

static enum ws_rc
frame_error(int *close_code, const char **why, int code, const char *text)
{
	*close_code = code;
	*why = text;
	return WS_REFUSED;
}

enum ws_rc
ws_frame_parse(unsigned char *buf, size_t len, size_t max_payload,
	       struct ws_frame *f, int *close_code, const char **why)
{
	size_t head = 2;
	uint64_t plen;
	uint8_t op;

	if (len < 2)
		return WS_MORE;
	op = buf[0] & 0x0f;
	if ((buf[0] & 0x70) != 0)
		return frame_error(close_code, why, WS_CLOSE_PROTOCOL_ERROR,
				   "reserved bits set");
	if ((buf[1] & 0x80) == 0)
		return frame_error(close_code, why, WS_CLOSE_PROTOCOL_ERROR,
				   "unmasked client frame");
	if (op != WS_OP_CONTINUATION && op != WS_OP_TEXT &&
	    op != WS_OP_BINARY && op != WS_OP_CLOSE && op != WS_OP_PING &&
	    op != WS_OP_PONG)
		return frame_error(close_code, why, WS_CLOSE_PROTOCOL_ERROR,
				   "unknown opcode");
	plen = buf[1] & 0x7f;
	if ((op & 0x8) != 0 && ((buf[0] & 0x80) == 0 || plen > 125))
		return frame_error(close_code, why, WS_CLOSE_PROTOCOL_ERROR,
				   "fragmented or long control frame");
	if (plen == 126) {
		if (len < 4)
			return WS_MORE;
		plen = ((uint64_t)buf[2] << 8) | buf[3];
		head = 4;
	} else if (plen == 127) {
		if (len < 10)
			return WS_MORE;
		if ((buf[2] & 0x80) != 0)
			return frame_error(close_code, why,
					   WS_CLOSE_PROTOCOL_ERROR,
					   "length over 63 bits");
		plen = 0;
		for (int i = 2; i < 10; i++)
			plen = (plen << 8) | buf[i];
		head = 10;
	}
	if (plen > max_payload)
		return frame_error(close_code, why, WS_CLOSE_TOO_BIG,
				   "message too big");
	if (len < head + 4 || len - head - 4 < plen)
		return WS_MORE;
	f->fin = (buf[0] & 0x80) != 0;
	f->opcode = op;
	f->payload = buf + head + 4;
	f->payload_len = (size_t)plen;
	f->frame_len = head + 4 + (size_t)plen;
	for (size_t i = 0; i < f->payload_len; i++)
		f->payload[i] ^= buf[head + (i & 3)];
	return WS_OK;
}

size_t
ws_frame_header(uint8_t opcode, size_t payload_len, unsigned char out[10])
{
	out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
	if (payload_len < 126) {
		out[1] = (unsigned char)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (unsigned char)(payload_len >> 8);
		out[3] = (unsigned char)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] =
			(unsigned char)((uint64_t)payload_len >> (8 * (7 - i)));
	return 10;
}
