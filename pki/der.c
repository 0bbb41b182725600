// SPDX-License-Identifier: Apache-2.0
/*
 * A minimal strict DER reader and writer for the issue path: walking a CSR
 * to find its signed bytes, key and signature, and writing the device
 * certificate from a cached template. Runs in the `ca` process (and in any
 * process that issues device certificates). The reader trusts nothing: it
 * accepts single-byte tags and definite lengths in their shortest form
 * only, and never reads past the bytes it is given. Anything it refuses the
 * callers hand to OpenSSL's full parser, which decides.
 */
#include <string.h>

#include "pki_int.h"

bool
pki_der_get(struct pki_der *in, unsigned char tag, struct pki_der *val,
	    struct pki_der *tlv)
{
	const unsigned char *p = in->p;
	size_t left = in->len, len, n, i, hdr;

	if (left < 2 || p[0] != tag)
		return false;
	if (p[1] < 0x80) {
		len = p[1];
		hdr = 2;
	} else {
		/* 0x80 (indefinite) and lengths above 4 octets are BER. */
		n = p[1] & 0x7f;
		if (n == 0 || n > 4 || left < 2 + n || p[2] == 0)
			return false;
		len = 0;
		for (i = 0; i < n; i++)
			len = (len << 8) | p[2 + i];
		if (len < 0x80) /* would fit the short form */
			return false;
		hdr = 2 + n;
	}
	if (len > left - hdr)
		return false;
	if (val != NULL) {
		val->p = p + hdr;
		val->len = len;
	}
	if (tlv != NULL) {
		tlv->p = p;
		tlv->len = hdr + len;
	}
	in->p = p + hdr + len;
	in->len = left - hdr - len;
	return true;
}

size_t
pki_der_tl_len(size_t len)
{
	if (len < 0x80)
		return 2;
	if (len < 0x100)
		return 3;
	if (len < 0x10000)
		return 4;
	return 5;
}

void
pki_der_put(struct pki_der_w *w, const void *data, size_t len)
{
	if (w->overflow || len > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (len > 0)
		memcpy(w->p + w->len, data, len);
	w->len += len;
}

void
pki_der_put_tl(struct pki_der_w *w, unsigned char tag, size_t len)
{
	unsigned char h[6];
	size_t n = 0;

	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (unsigned char)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (unsigned char)len;
	} else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else if (len < 0x1000000) {
		h[n++] = 0x83;
		h[n++] = (unsigned char)(len >> 16);
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		w->overflow = true;
		return;
	}
	pki_der_put(w, h, n);
}

void
pki_der_put_tlv(struct pki_der_w *w, unsigned char tag, const void *data,
		size_t len)
{
	pki_der_put_tl(w, tag, len);
	pki_der_put(w, data, len);
}
