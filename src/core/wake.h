/* Wake-ups held back until the waking thread's loop is about to block
 * (issue 11). A thread that hands work to another (a post to the WS
 * thread, the agent, the store writer) wakes it at once; the woken thread
 * then often preempts the waker, handles that one item and sleeps, and
 * the waker resumes to post the next: a context switch per hand-off. A
 * loop thread that holds its wake-ups (wake_hold) makes every hand-off
 * of one loop iteration first, then wakes each receiver once
 * (wake_flush, called where the loop would block and before any wait on
 * another thread). Threads that never call wake_hold wake at once. */
#pragma once

/* A receiver that can be woken later: registered when it starts (0: the
 * table is full, its wakers must wake it at once), removed before its
 * memory goes (a held wake-up of a receiver removed meanwhile is dropped:
 * it no longer runs anything). Any thread. */
int wake_target_add(void *arg);
void wake_target_del(void *arg);

/* This thread holds its wake-ups from now on (its loop calls wake_flush
 * before it blocks, and before it exits). */
void wake_hold(void);

/* The wake-up fn(arg) of a receiver: 1 when held (it runs at this
 * thread's next wake_flush, once whatever the number of calls with the
 * same fn and arg), 0 when the caller must wake it now (the thread does
 * not hold, or holds the most it can). */
int wake_later(void (*fn)(void *arg), void *arg);

/* Run the held wake-ups (none held: nothing). */
void wake_flush(void);
