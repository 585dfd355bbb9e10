/* acme_jws.c - placeholder until written. */
