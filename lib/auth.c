/* SPDX-License-Identifier: MIT */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "sysio.h"

int auth_psk_load(const char *path, struct auth_psk *psk)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		return -EPERM;
	}
	/* One byte more than fits, so an over-long key is seen, not cut. */
	unsigned char buf[AUTH_PSK_MAX + 2];
	ssize_t n = sysio_read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return (int)n;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n < AUTH_PSK_MIN || n > AUTH_PSK_MAX)
		return -EINVAL;
	memcpy(psk->key, buf, (size_t)n);
	psk->len = (size_t)n;
	return 0;
}

const char *auth_psk_strerror(int rc)
{
	if (rc == -EPERM)
		return "readable by group or others (chmod 600)";
	if (rc == -EINVAL)
		return "not a regular file holding a key of 16 to 256 bytes";
	return strerror(-rc);
}

int auth_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

void auth_mac(const struct auth_psk *psk, enum auth_role role,
	      const uint8_t server_nonce[AUTH_NONCE_BYTES],
	      const uint8_t client_nonce[AUTH_NONCE_BYTES],
	      uint8_t out[AUTH_MAC_BYTES])
{
	static const char label_client[] = "spillway-auth-v1 client";
	static const char label_server[] = "spillway-auth-v1 server";
	const char *label = role == AUTH_ROLE_CLIENT ? label_client : label_server;
	size_t label_len = role == AUTH_ROLE_CLIENT ? sizeof(label_client) - 1
						    : sizeof(label_server) - 1;
	unsigned char msg[sizeof(label_client) + 2 * AUTH_NONCE_BYTES];
	memcpy(msg, label, label_len);
	memcpy(msg + label_len, server_nonce, AUTH_NONCE_BYTES);
	memcpy(msg + label_len + AUTH_NONCE_BYTES, client_nonce, AUTH_NONCE_BYTES);
	unsigned int out_len = AUTH_MAC_BYTES;
	HMAC(EVP_sha256(), psk->key, (int)psk->len, msg,
	     label_len + 2 * AUTH_NONCE_BYTES, out, &out_len);
}

int auth_check(const struct auth_psk *psk, enum auth_role role,
	       const uint8_t server_nonce[AUTH_NONCE_BYTES],
	       const uint8_t client_nonce[AUTH_NONCE_BYTES],
	       const uint8_t mac[AUTH_MAC_BYTES])
{
	uint8_t want[AUTH_MAC_BYTES];
	auth_mac(psk, role, server_nonce, client_nonce, want);
	return CRYPTO_memcmp(want, mac, AUTH_MAC_BYTES) == 0 ? 0 : -EACCES;
}
