/* The floor of `make bench`'s small requests: a FastCGI program that does nothing but read
 * each request and answer it with BENCH_FLOOR_BODY (the upstream's chat answer), with no
 * upstream call. What it and lighttpd cost per request is the least any FastCGI program
 * behind lighttpd can cost; the proxy's row is read against it. One request at a time on
 * the listening socket lighttpd gives it on fd 0, in libfcgi's own blocking loop. */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char* body = getenv("BENCH_FLOOR_BODY");
    if (!body) body = "{}";
    int body_size = (int)strlen(body);  /* once: the loop below is what the floor measures */
    char head[128];
    int head_size = snprintf(head, sizeof head,
                             "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                             body_size);
    if (FCGX_Init() != 0 || head_size < 0 || (size_t)head_size >= sizeof head) return 1;
    FCGX_Request request;
    if (FCGX_InitRequest(&request, 0, 0) != 0) return 1;
    char ignored[16384];
    while (FCGX_Accept_r(&request) == 0) {
        while (FCGX_GetStr(ignored, sizeof ignored, request.in) > 0) {
        }
        if (FCGX_PutStr(head, head_size, request.out) != head_size ||
            FCGX_PutStr(body, body_size, request.out) != body_size)
            fprintf(stderr, "bench-floor: a write failed\n");
        request.detached = 1; /* close at once: no wait for the web server to close first */
        FCGX_Finish_r(&request);
    }
    return 0;
}
