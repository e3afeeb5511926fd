/* SPDX-License-Identifier: MIT */
/*
 * Pre-shared-key challenge/response. Each side sends a 32-byte nonce in
 * Hello/HelloReply; the client proves the key with
 *   HMAC-SHA256(psk, "spillway-auth-v1 client" || server_nonce || client_nonce)
 * and the server answers with the same over "... server", so each side knows
 * the other holds the key and a recorded exchange cannot be replayed.
 */
#ifndef SPILLWAY_AUTH_H
#define SPILLWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_PSK_MIN 16
#define AUTH_PSK_MAX 256
#define AUTH_NONCE_BYTES 32
#define AUTH_MAC_BYTES 32

enum auth_role { AUTH_ROLE_CLIENT, AUTH_ROLE_SERVER };

struct auth_psk {
	size_t len;
	unsigned char key[AUTH_PSK_MAX];
};

/*
 * Read a key file: its bytes, less one trailing newline. Refuses a file that
 * group or others can read (-EPERM), a key shorter than 16 or longer than
 * 256 bytes (-EINVAL).
 */
int auth_psk_load(const char *path, struct auth_psk *psk);

/* What an auth_psk_load error means, for a message to the operator. */
const char *auth_psk_strerror(int rc);

/* Cryptographically random bytes; 0 or -EIO. */
int auth_random(void *buf, size_t n);

void auth_mac(const struct auth_psk *psk, enum auth_role role,
	      const uint8_t server_nonce[AUTH_NONCE_BYTES],
	      const uint8_t client_nonce[AUTH_NONCE_BYTES],
	      uint8_t out[AUTH_MAC_BYTES]);

/* 0 if mac is right for role, -EACCES otherwise; compared in constant time. */
int auth_check(const struct auth_psk *psk, enum auth_role role,
	       const uint8_t server_nonce[AUTH_NONCE_BYTES],
	       const uint8_t client_nonce[AUTH_NONCE_BYTES],
	       const uint8_t mac[AUTH_MAC_BYTES]);

#endif
