// A reference point for bench/tunnel-throughput.mjs, not part of tollgate: the cheapest CONNECT relay Linux
// allows, so the tunnel figures can be read against what any relay reaches on the same machine. It
// answers one CONNECT per connection (no authentication, no checks: benchmark use on 127.0.0.1 only),
// then moves bytes each way with splice(2) through a pipe, so they never enter user space (what Go's
// io.Copy between TCP connections does), one thread per direction.
//
// Built and started by `node bench/tunnel-throughput.mjs --pipe-proxy splice` (cc -O2 -pthread); prints
// {"port": N} once listening on an ephemeral 127.0.0.1 port.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct dir { int in, out; };

static void *relay(void *arg) {
  struct dir *d = arg;
  int p[2];
  if (pipe2(p, 0) < 0) return NULL;
  fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  for (;;) {
    ssize_t n = splice(d->in, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (n <= 0) break;
    while (n > 0) {
      ssize_t m = splice(p[0], NULL, d->out, NULL, n, SPLICE_F_MOVE | SPLICE_F_MORE);
      if (m <= 0) { n = -1; break; }
      n -= m;
    }
    if (n < 0) break;
  }
  shutdown(d->out, SHUT_WR);
  close(p[0]); close(p[1]);
  return NULL;
}

static void *conn(void *arg) {
  int c = (int)(long)arg;
  char buf[8192]; size_t len = 0; char *end = NULL;
  while (len < sizeof buf - 1) {
    ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
    if (n <= 0) { close(c); return NULL; }
    len += n; buf[len] = 0;
    if ((end = strstr(buf, "\r\n\r\n"))) break;
  }
  if (!end) { close(c); return NULL; }
  char host[256]; int port;
  if (sscanf(buf, "CONNECT %255[^:]:%d", host, &port) != 2) { close(c); return NULL; }
  int u = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(u, (struct sockaddr *)&a, sizeof a) < 0) { close(c); close(u); return NULL; }
  int one = 1; setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const char *ok = "HTTP/1.1 200 Connection Established\r\n\r\n";
  write(c, ok, strlen(ok));
  size_t rest = len - (end + 4 - buf);
  if (rest > 0) write(u, end + 4, rest);
  struct dir up = { c, u }, down = { u, c };
  pthread_t t1, t2;
  pthread_create(&t1, NULL, relay, &up); pthread_create(&t2, NULL, relay, &down);
  pthread_join(t1, NULL); pthread_join(t2, NULL);
  close(c); close(u);
  return NULL;
}

int main(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1; setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  bind(s, (struct sockaddr *)&a, sizeof a); listen(s, 128);
  socklen_t al = sizeof a; getsockname(s, (struct sockaddr *)&a, &al);
  printf("{\"port\": %d}\n", ntohs(a.sin_port)); fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    pthread_t t; pthread_create(&t, NULL, conn, (void *)(long)c); pthread_detach(t);
  }
}
