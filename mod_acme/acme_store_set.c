/* acme_store_set.c - being split out of acme_store.c */
