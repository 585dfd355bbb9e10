/* acme_client.h placeholder */
