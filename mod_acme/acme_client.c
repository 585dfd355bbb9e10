/* acme_client.c - placeholder until written. */
