/* libcurl with the project's TLS trust (tls.h): the options of one transfer, and an error message
 * for a failed one that says what the user can do about it. */
#pragma once

#include <stdbool.h>
#include <curl/curl.h>

#include "tls.h"

/* Sets the TLS options of `easy` for `trust` (which must outlive the transfer): pin mode checks
 * exactly the pinned key through OpenSSL (and curl's own CURLOPT_PINNEDPUBLICKEY), without CA or
 * name; CA mode verifies the chain (the CA file, else the system's trust store) and the name. */
int nm_tls_curl_setup(CURL *easy, NmTlsTrust *trust);

/* "Cannot reach the server at URL: ..." style text for a transfer that failed with `code`:
 * names a refused pin, an untrusted or expired certificate, plain HTTP to a TLS port and the
 * reverse, or curl's own words. `ca_option` is how the user of the program names a CA file
 * ("--ca-file"), for the message about a certificate the CA does not vouch for. */
char *nm_tls_curl_error(CURLcode code, const char *errbuf, const NmTlsTrust *trust, const char *url,
                        const char *ca_option);
