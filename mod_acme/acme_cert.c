/* acme_cert.c - placeholder until written. */
