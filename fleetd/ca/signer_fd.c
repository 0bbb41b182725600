// SPDX-License-Identifier: Apache-2.0
/*
 * Sealed memfds passed over the signer socketpairs (see signer_fd.h). Runs
 * in the ca process and on the job threads of net workers; what arrives
 * from the other side is checked before it is read.
 */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#include "ca/signer_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIGNER_FD_SEALS \
	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define SIGNER_FD_MAX 4 /* descriptors accepted per record, then closed */

int
signer_fd_make(const char *name, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t done = 0;
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, SIGNER_FD_SEALS) != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int
signer_fd_read(int fd, size_t len, unsigned char **out)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t done = 0;
	int seals;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < 0 || (size_t)st.st_size != len)
		return -1;
	/* Sealed: the other side can no longer change or resize it while
	 * we read (a shrinking file would end the copy short). */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) !=
		    (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE))
		return -1;
	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return -1;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return -1;
		}
		done += (size_t)n;
	}
	*out = buf;
	return 0;
}

ssize_t
signer_fd_send(int sock, const void *buf, size_t len, int fd, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
}

ssize_t
signer_fd_recv(int sock, void *buf, size_t cap, int *fd, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SIGNER_FD_MAX)];
	} control;
	struct iovec iov = {buf, cap};
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (*fd < 0 && (msg.msg_flags & MSG_CTRUNC) == 0)
				*fd = got;
			else
				close(got);
		}
	}
	if ((msg.msg_flags & MSG_CTRUNC) != 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return n;
}
