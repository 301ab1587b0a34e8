/*
 * A single-producer single-consumer byte ring over two threads, laid out like Floodgate's
 * SharedArrayBuffer ring (src/ring/layout.ts), to show what the same design costs in C11:
 *
 *   record   int32 length | payload | padding to 8 bytes
 *   wrap     length -1 at the current offset, record placed at offset 0
 *   empty    write == read; the producer always leaves an 8-byte gap so full != empty
 *   publish  the producer stores its write offset (release) every `publish_every`
 *            records; the consumer stores its read offset (release) after each read
 *            of up to 64 records, as RingConsumer.read() does
 *
 * The consumer copies every payload into private memory (the engine copies each envelope
 * out of shared memory before decoding it) and folds two bytes of it into a checksum so
 * the copy cannot be optimised away. Waiting is spinning with sched_yield(): this is a
 * ceiling, not a power-efficient design.
 *
 *   gcc -O2 -std=c11 -pthread -o spsc-ring spsc-ring.c
 *   ./spsc-ring <payload bytes> <records> <publish every> [ring data bytes]
 *
 * Prints one JSON object.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#define ALIGN_BYTES 8
#define PREFIX_BYTES 4
#define GAP_BYTES ALIGN_BYTES
#define WRAP_MARKER (-1)
#define READ_BATCH_RECORDS 64

struct ring {
  /* Each side's index on its own cache line, like the engine's header lines. */
  _Alignas(64) _Atomic int64_t write_offset;
  _Alignas(64) _Atomic int64_t read_offset;
  _Alignas(64) uint8_t *data;
  int64_t data_bytes;
};

struct run {
  struct ring ring;
  const uint8_t *payload;
  int64_t payload_bytes;
  int64_t records;
  int64_t publish_every;
  uint64_t checksum;
};

static int64_t slot_bytes_for(int64_t payload_bytes) {
  return (PREFIX_BYTES + payload_bytes + ALIGN_BYTES - 1) & ~(int64_t)(ALIGN_BYTES - 1);
}

/* Where a record of slot_bytes may start, or -1 (the same rule as placementOf in ring-producer.ts). */
static int64_t placement_of(int64_t write, int64_t read, int64_t slot_bytes, int64_t data_bytes) {
  if (write >= read) {
    int64_t end = write + slot_bytes;
    if (end < data_bytes || (end == data_bytes && read != 0)) return write;
    return slot_bytes + GAP_BYTES <= read ? 0 : -1;
  }
  return write + slot_bytes + GAP_BYTES <= read ? write : -1;
}

static void *produce(void *argument) {
  struct run *run = argument;
  struct ring *ring = &run->ring;
  int64_t slot_bytes = slot_bytes_for(run->payload_bytes);
  int64_t write = 0;
  int64_t unpublished = 0;
  for (int64_t i = 0; i < run->records; i++) {
    int64_t start;
    for (;;) {
      int64_t read = atomic_load_explicit(&ring->read_offset, memory_order_acquire);
      start = placement_of(write, read, slot_bytes, ring->data_bytes);
      if (start >= 0) break;
      /* Full: make everything written visible, then wait for the consumer. */
      atomic_store_explicit(&ring->write_offset, write, memory_order_release);
      unpublished = 0;
      sched_yield();
    }
    if (start != write) memcpy(ring->data + write, &(int32_t){WRAP_MARKER}, PREFIX_BYTES);
    int32_t length = (int32_t)run->payload_bytes;
    memcpy(ring->data + start, &length, PREFIX_BYTES);
    memcpy(ring->data + start + PREFIX_BYTES, run->payload, (size_t)run->payload_bytes);
    write = start + slot_bytes;
    if (write == ring->data_bytes) write = 0;
    if (++unpublished == run->publish_every) {
      atomic_store_explicit(&ring->write_offset, write, memory_order_release);
      unpublished = 0;
    }
  }
  atomic_store_explicit(&ring->write_offset, write, memory_order_release);
  return NULL;
}

static void *consume(void *argument) {
  struct run *run = argument;
  struct ring *ring = &run->ring;
  uint8_t *copy = malloc((size_t)run->payload_bytes);
  int64_t read = 0;
  int64_t consumed = 0;
  uint64_t checksum = 0;
  while (consumed < run->records) {
    int64_t write = atomic_load_explicit(&ring->write_offset, memory_order_acquire);
    if (write == read) {
      sched_yield();
      continue;
    }
    for (int batch = 0; batch < READ_BATCH_RECORDS && read != write; batch++) {
      int32_t length;
      memcpy(&length, ring->data + read, PREFIX_BYTES);
      if (length == WRAP_MARKER) {
        read = 0;
        batch--;
        continue;
      }
      memcpy(copy, ring->data + read + PREFIX_BYTES, (size_t)length);
      checksum += copy[0] + copy[length - 1];
      read += slot_bytes_for(length);
      if (read == ring->data_bytes) read = 0;
      consumed++;
    }
    atomic_store_explicit(&ring->read_offset, read, memory_order_release);
  }
  run->checksum = checksum;
  free(copy);
  return NULL;
}

static double seconds_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s <payload bytes> <records> <publish every> [ring data bytes]\n", argv[0]);
    return 2;
  }
  struct run run = {0};
  run.payload_bytes = atoll(argv[1]);
  run.records = atoll(argv[2]);
  run.publish_every = atoll(argv[3]);
  run.ring.data_bytes = argc > 4 ? atoll(argv[4]) : 16 * 1024 * 1024;
  if (run.payload_bytes < 1 || run.records < 1 || run.publish_every < 1 || run.ring.data_bytes % ALIGN_BYTES != 0 ||
      slot_bytes_for(run.payload_bytes) * 4 > run.ring.data_bytes) {
    fprintf(stderr, "bad arguments: payload must fit a quarter of the ring, ring bytes a multiple of 8\n");
    return 2;
  }
  uint8_t *payload = malloc((size_t)run.payload_bytes);
  for (int64_t i = 0; i < run.payload_bytes; i++) payload[i] = (uint8_t)(i * 7 + 1);
  run.payload = payload;
  run.ring.data = aligned_alloc(64, (size_t)run.ring.data_bytes);
  memset(run.ring.data, 0, (size_t)run.ring.data_bytes);
  atomic_init(&run.ring.write_offset, 0);
  atomic_init(&run.ring.read_offset, 0);

  pthread_t producer, consumer;
  double started = seconds_now();
  pthread_create(&consumer, NULL, consume, &run);
  pthread_create(&producer, NULL, produce, &run);
  pthread_join(producer, NULL);
  pthread_join(consumer, NULL);
  double elapsed = seconds_now() - started;

  uint64_t expected = (uint64_t)run.records * ((uint64_t)payload[0] + payload[run.payload_bytes - 1]);
  printf("{\"payloadBytes\":%lld,\"records\":%lld,\"publishEvery\":%lld,\"ringDataBytes\":%lld,"
         "\"seconds\":%.6f,\"recordsPerS\":%.0f,\"megabytesPerS\":%.1f,\"checksumOk\":%s}\n",
         (long long)run.payload_bytes, (long long)run.records, (long long)run.publish_every, (long long)run.ring.data_bytes,
         elapsed, (double)run.records / elapsed, (double)run.records * (double)run.payload_bytes / elapsed / 1e6,
         run.checksum == expected ? "true" : "false");
  free(payload);
  free(run.ring.data);
  return run.checksum == expected ? 0 : 1;
}
