/* acme_csr.c - placeholder until written. */
