/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server side of RFC 6455 on plain buffers, for the device listener:
 * the HTTP/1.1 upgrade request (strict: GET, one path, the subprotocol
 * required), the handshake answer, and client frames (masked, no reserved
 * bits, control frames short and whole, bounded payloads). No I/O and no
 * lws here: channel.c feeds it what the TLS layer decrypted, so rules that
 * lws 4.1 does not enforce (it processes unmasked client frames) hold.
 * All input is untrusted.
 */
#ifndef FLEETD_CHANNEL_WS_H
#define FLEETD_CHANNEL_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request line and headers together, at most (431 beyond). */
#define WS_REQUEST_MAX 8192

#define WS_OP_CONTINUATION 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA

#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_NO_STATUS 1005
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009

enum ws_rc {
	WS_MORE = 0, /* incomplete: call again with more bytes */
	WS_OK = 1,
	WS_REFUSED = -1, /* see status/close_code and why */
};

struct ws_upgrade {
	size_t consumed; /* bytes of the request (WS_OK) */
	int status; /* WS_REFUSED: the HTTP status to answer */
	const char *why; /* WS_REFUSED: a short reason (static) */
	char accept[32]; /* WS_OK: Sec-WebSocket-Accept value */
};

/*
 * Parses the upgrade request at the start of buf. WS_OK only for
 * `GET <path> HTTP/1.1` with Host, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13, a 16-byte Sec-WebSocket-Key and protocol in
 * Sec-WebSocket-Protocol, and no body. Otherwise WS_REFUSED with 400, 404,
 * 405, 426 (not an upgrade), 431 (too long) or 505.
 */
enum ws_rc ws_upgrade_parse(const unsigned char *buf, size_t len,
			    const char *path, const char *protocol,
			    struct ws_upgrade *out);

/* Writes the answer (101 with protocol, or the refusal of u->status with
 * u->why as problem+json and `Connection: close`; the caller may set 503)
 * into out; returns its length, 0 if outlen is too small. */
size_t ws_upgrade_answer(const struct ws_upgrade *u, enum ws_rc rc,
			 const char *protocol, char *out, size_t outlen);

struct ws_frame {
	bool fin;
	uint8_t opcode;
	size_t frame_len; /* header + mask + payload: what to consume */
	unsigned char *payload; /* inside buf, unmasked in place */
	size_t payload_len;
};

/*
 * Parses one client frame at the start of buf (len bytes). WS_OK: *f is
 * set and the payload unmasked in place. WS_REFUSED: *close_code is 1002
 * (unmasked, reserved bits, unknown opcode, bad control frame) or 1009
 * (payload over max_payload), *why says which.
 */
enum ws_rc ws_frame_parse(unsigned char *buf, size_t len, size_t max_payload,
			  struct ws_frame *f, int *close_code,
			  const char **why);

/* The header of an unmasked server frame (FIN set); returns its length
 * (2, 4 or 10). */
size_t ws_frame_header(uint8_t opcode, size_t payload_len,
		       unsigned char out[10]);

#endif
