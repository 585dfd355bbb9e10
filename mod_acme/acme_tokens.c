/* acme_tokens.c - placeholder until written. */
