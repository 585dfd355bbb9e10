/* acme_key.c - placeholder until written. */
