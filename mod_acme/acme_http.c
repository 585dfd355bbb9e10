/* acme_http.c - placeholder until written. */
