/* acme_order.h placeholder */
