/* The libcurl floor of `make bench`'s small requests: the least a program driving libcurl
 * multi can spend on the proxy's upstream transfers. It makes the transfers the proxy makes
 * for wrk's small chat completions — a POST of the same body to the same URL, as many in
 * flight as wrk has connections, connections kept — and nothing else: no FastCGI, no JSON,
 * no accounting. Driven as the proxy drives libcurl (epoll + curl_multi_socket_action, not
 * curl_multi_poll), so that the difference to the proxy's own CPU per request is what the
 * proxy adds around libcurl, not a different way of waiting.
 *
 * Usage: bench-curl-floor URL IN_FLIGHT WARMUP_S SECONDS [1.1|2] [CA_FILE]
 *        bench-curl-floor --streams URL COUNT TIMEOUT_S [1.1|2] [CA_FILE]
 * The second form is the floor of the concurrent streams: COUNT transfers of the stream URL,
 * each run once to its end, opened at BENCH_RATE a second (the streams client opens 100 every
 * 50 ms), all of them open at once while the upstream paces its events. It prints the CPU of
 * the whole run and the memory per open stream (peak RSS over the RSS before the first).
 * The body is BENCH_BODY. With BENCH_RATE (transfers/s), a finished transfer waits for its
 * turn before it starts again, so that the floor can be read at the proxy's own rate too
 * (more transfers a second share more of each epoll_wait, and cost less each). Transfers of the warm-up (connections and TLS sessions made) are
 * not counted. Prints one JSON line: transfers, errors, seconds, and CPU (getrusage) of the
 * measured part. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct floor_run {
    CURLM* multi;
    int epoll_fd;
    long long timer_due_ms; /* when libcurl wants its timeout action; -1: none */
    long transfers;
    long errors;
    double rate;         /* transfers started a second at most; 0: no pacing */
    long long paced_from_ms;
    long started;        /* since paced_from_ms */
    CURL** waiting;      /* finished handles waiting for their turn (pacing) */
    int waiting_count;
    char first_error[CURL_ERROR_SIZE + 64];
    int http2;           /* told no socket events, as the proxy on HTTP/2 (upstream.cpp says why) */
    int once;            /* streams: a finished transfer is not started again */
    long finished;       /* transfers over, well or not */
    long total;
};

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double cpu_us(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

static size_t discard(char* data, size_t size, size_t count, void* user) {
    (void)data;
    (void)user;
    return size * count;
}

/* libcurl says which sockets to watch for what: epoll follows. */
static int on_socket(CURL* easy, curl_socket_t fd, int what, void* user, void* known) {
    (void)easy;
    struct floor_run* run = user;
    if (what == CURL_POLL_REMOVE) {
        /* libcurl may already have closed it: nothing to undo then. */
        if (epoll_ctl(run->epoll_fd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != EBADF && errno != ENOENT)
            perror("bench-curl-floor: epoll_ctl DEL");
        return 0;
    }
    struct epoll_event event = {0};
    event.data.fd = fd;
    event.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (epoll_ctl(run->epoll_fd, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) != 0) {
        perror("bench-curl-floor: epoll_ctl");
        return -1;
    }
    if (!known && curl_multi_assign(run->multi, fd, run) != CURLM_OK) return -1;
    return 0;
}

static int on_timer(CURLM* multi, long timeout_ms, void* user) {
    (void)multi;
    struct floor_run* run = user;
    run->timer_due_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

/* The URL parsed once, its path and query set as one path as the proxy sets them
 * (upstream_transfer.cpp): libcurl 7.88 then neither parses nor formats it again for each
 * transfer, so the floor does no URL work the proxy skips. */
static CURLU* parsed_url(const char* url) {
    const char* scheme_end = strstr(url, "://");
    const char* target = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    CURLU* parsed = curl_url();
    if (!parsed || !target) return parsed;
    char* origin = strndup(url, (size_t)(target - url));
    int ok = origin && curl_url_set(parsed, CURLUPART_URL, origin, 0) == CURLUE_OK &&
             curl_url_set(parsed, CURLUPART_PATH, target, 0) == CURLUE_OK;
    free(origin);
    if (ok) return parsed;
    curl_url_cleanup(parsed);
    return NULL;
}

static CURL* new_transfer(CURLU* url, const char* body, struct curl_slist* headers, long http2, const char* ca) {
    CURL* easy = curl_easy_init();
    if (!easy) return NULL;
    CURLcode set = CURLE_OK;
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_CURLU, url);
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (set == CURLE_OK) set = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    if (set == CURLE_OK && ca) set = curl_easy_setopt(easy, CURLOPT_CAINFO, ca);
    /* The CA store kept between connections, as the proxy keeps it (upstream_transfer.cpp). */
    if (set == CURLE_OK && ca) set = curl_easy_setopt(easy, CURLOPT_CAPATH, (char*)NULL);
    if (set != CURLE_OK) {
        fprintf(stderr, "bench-curl-floor: %s\n", curl_easy_strerror(set));
        curl_easy_cleanup(easy);
        return NULL;
    }
    return easy;
}

/* Each finished transfer is counted and started again on the same handle (its connection
 * kept in the multi handle's cache), so IN_FLIGHT transfers are always under way. */
static int restart_finished(struct floor_run* run) {
    int left;
    CURLMsg* message;
    while ((message = curl_multi_info_read(run->multi, &left))) {
        if (message->msg != CURLMSG_DONE) continue;
        CURL* easy = message->easy_handle;
        CURLcode result = message->data.result;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (result == CURLE_OK && status == 200) {
            run->transfers++;
        } else if (run->errors++ == 0) {
            snprintf(run->first_error, sizeof run->first_error, "status %ld, %s", status, curl_easy_strerror(result));
        }
        if (curl_multi_remove_handle(run->multi, easy) != CURLM_OK) return -1;
        run->finished++;
        if (!run->once) run->waiting[run->waiting_count++] = easy;
    }
    return 0;
}

/* Starts the waiting transfers whose turn has come; returns ms until the next turn, or -1. */
static long long start_waiting(struct floor_run* run) {
    while (run->waiting_count > 0) {
        if (run->rate > 0) {
            long long due = run->paced_from_ms + (long long)(run->started * 1000.0 / run->rate);
            long long now = now_ms();
            if (due > now) return due - now;
        }
        if (curl_multi_add_handle(run->multi, run->waiting[--run->waiting_count]) != CURLM_OK) return -2;
        run->started++;
    }
    return -1;
}

/* The event loop, as the proxy's: epoll, libcurl's timer, socket actions. Until `until_ms`. */
static int run_until(struct floor_run* run, long long until_ms) {
    struct epoll_event events[64];
    int running = 0;
    for (long long now = now_ms(); now < until_ms && !(run->once && run->finished == run->total); now = now_ms()) {
        long long next_turn = start_waiting(run);
        if (next_turn == -2) return -1;
        long long wait = until_ms - now;
        if (next_turn >= 0 && next_turn < wait) wait = next_turn;
        if (run->timer_due_ms >= 0 && run->timer_due_ms - now < wait) wait = run->timer_due_ms - now;
        int ready = epoll_wait(run->epoll_fd, events, 64, wait < 0 ? 0 : (int)wait);
        if (ready < 0 && errno != EINTR) {
            perror("bench-curl-floor: epoll_wait");
            return -1;
        }
        for (int i = 0; i < ready; i++) {
            int flags = run->http2 ? 0 :
                        ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((events[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            if (curl_multi_socket_action(run->multi, events[i].data.fd, flags, &running) != CURLM_OK) return -1;
        }
        if (run->timer_due_ms >= 0 && now_ms() >= run->timer_due_ms) {
            run->timer_due_ms = -1;
            if (curl_multi_socket_action(run->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK) return -1;
        }
        if (restart_finished(run) != 0) return -1;
    }
    return 0;
}

static long rss_kib(void) {
    FILE* statm = fopen("/proc/self/statm", "r");
    long pages = -1, resident = -1;
    if (!statm) return -1;
    if (fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(statm);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long peak_rss_kib(void) {
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : -1;
}

/* The multi handle driven by epoll, as the proxy's; `count` handles, none added yet. */
static int start_run(struct floor_run* run, CURL** easies, int count, CURLU* url, const char* body,
                     struct curl_slist* headers, long http2, const char* ca) {
    run->waiting = calloc((size_t)count, sizeof *run->waiting);
    run->http2 = (int)http2;
    run->total = count;
    run->multi = curl_multi_init();
    run->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!run->waiting || !run->multi || run->epoll_fd < 0 ||
        curl_multi_setopt(run->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(run->multi, CURLMOPT_SOCKETDATA, run) != CURLM_OK ||
        curl_multi_setopt(run->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(run->multi, CURLMOPT_TIMERDATA, run) != CURLM_OK ||
        /* A connection per transfer in flight on HTTP/2 too, as the proxy (upstream.cpp). */
        curl_multi_setopt(run->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING) != CURLM_OK)
        return -1;
    for (int i = 0; i < count; i++) {
        easies[i] = new_transfer(url, body, headers, http2, ca);
        if (!easies[i]) return -1;
    }
    return 0;
}

static void end_run(struct floor_run* run, CURL** easies, int count) {
    for (int i = 0; i < count; i++) {
        if (!easies[i]) continue;
        curl_multi_remove_handle(run->multi, easies[i]); /* refused harmlessly for one not added */
        curl_easy_cleanup(easies[i]);
    }
    if (run->multi) curl_multi_cleanup(run->multi);
    if (run->epoll_fd >= 0) close(run->epoll_fd);
    free(run->waiting);
}

/* Small requests: IN_FLIGHT transfers always under way, counted after the warm-up. */
static int small_requests(struct floor_run* run, CURL** easies, int in_flight, double warmup_s, double seconds) {
    for (int i = 0; i < in_flight; i++)
        if (curl_multi_add_handle(run->multi, easies[i]) != CURLM_OK) return 1;
    int failed = run_until(run, now_ms() + (long long)(warmup_s * 1000));
    run->transfers = run->errors = 0;
    double cpu_before = cpu_us();
    long long started = now_ms();
    run->paced_from_ms = started;
    run->started = 0;
    if (!failed) failed = run_until(run, started + (long long)(seconds * 1000));
    double cpu = cpu_us() - cpu_before;
    printf("{\"transfers\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"cpuUs\":%.0f,\"maxRssKiB\":%ld,\"firstError\":\"%s\"}\n",
           run->transfers, run->errors, (now_ms() - started) / 1000.0, cpu, peak_rss_kib(), run->first_error);
    return failed ? 1 : 0;
}

/* Streams: every transfer waits for its turn, runs once to its end; the run ends when all
 * have, or at the timeout (the unfinished ones then count as errors). */
static int streams(struct floor_run* run, CURL** easies, int count, double timeout_s) {
    long idle_kib = rss_kib();
    for (int i = 0; i < count; i++) run->waiting[run->waiting_count++] = easies[i];
    run->once = 1;
    double cpu_before = cpu_us();
    long long started = now_ms();
    run->paced_from_ms = started;
    int failed = run_until(run, started + (long long)(timeout_s * 1000));
    double cpu = cpu_us() - cpu_before;
    long unfinished = run->total - run->finished;
    printf("{\"streams\":%d,\"completed\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"cpuUs\":%.0f,\"idleRssKiB\":%ld,"
           "\"peakRssKiB\":%ld,\"firstError\":\"%s\"}\n",
           count, run->transfers, run->errors + unfinished, (now_ms() - started) / 1000.0, cpu, idle_kib,
           peak_rss_kib(), unfinished && !run->errors ? "not over within the timeout" : run->first_error);
    return failed ? 1 : 0;
}

int main(int argc, char** argv) {
    int streams_mode = argc > 1 && strcmp(argv[1], "--streams") == 0;
    char** arg = argv + streams_mode;
    int args = argc - streams_mode;
    if (args < (streams_mode ? 4 : 5)) {
        fprintf(stderr, "usage: %s URL IN_FLIGHT WARMUP_S SECONDS [1.1|2] [CA_FILE]\n"
                        "       %s --streams URL COUNT TIMEOUT_S [1.1|2] [CA_FILE]\n", argv[0], argv[0]);
        return 2;
    }
    int optional = streams_mode ? 4 : 5; /* where [1.1|2] [CA_FILE] begin */
    const char* url = arg[1];
    int count = atoi(arg[2]);
    long http2 = args > optional && strcmp(arg[optional], "2") == 0;
    const char* ca = args > optional + 1 ? arg[optional + 1] : NULL;
    const char* body = getenv("BENCH_BODY") ? getenv("BENCH_BODY") : "{}";
    if (count < 1 || count > 65536 || atof(arg[streams_mode ? 3 : 4]) <= 0) return 2;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;

    struct floor_run run = {.timer_due_ms = -1, .epoll_fd = -1,
                            .rate = getenv("BENCH_RATE") ? atof(getenv("BENCH_RATE")) : 0};
    struct curl_slist* headers = NULL;
    const char* lines[] = {"Content-Type: application/json", "api-key: bench-key"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist* grown = curl_slist_append(headers, lines[i]);
        if (!grown) return 1;
        headers = grown;
    }
    CURL** easies = calloc((size_t)count, sizeof *easies);
    CURLU* parsed = parsed_url(url);
    int failed = !easies || !parsed || start_run(&run, easies, count, parsed, body, headers, http2, ca) != 0;
    if (!failed)
        failed = streams_mode ? streams(&run, easies, count, atof(arg[3]))
                              : small_requests(&run, easies, count, atof(arg[3]), atof(arg[4]));
    if (easies) end_run(&run, easies, count);
    curl_slist_free_all(headers);
    curl_url_cleanup(parsed);
    free(easies);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
