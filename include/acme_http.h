/* acme_http.h placeholder */
