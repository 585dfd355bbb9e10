/* acme_order.c - placeholder until written. */
