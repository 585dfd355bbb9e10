/* acme_store.c - placeholder until written. */
