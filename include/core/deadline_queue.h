// Deadlines that all wait the same time (every stream's heartbeat, every upstream's
// silence limit). Kept in the order they were last armed, the first is always the next
// due: arming, re-arming and cancelling cost a few pointer moves, and the event loop
// sleeps exactly until the first one. A waiting request costs no wake-up before then.
#pragma once

#include <cstdint>
#include <limits>

class DeadlineQueue;

// A link is in at most one queue at a time, and knows which.
struct DeadlineLink {
    DeadlineLink* prev = nullptr;
    DeadlineLink* next = nullptr;
    int64_t due_ms = 0;
    void* owner = nullptr;  // what to act on when it falls due
    bool armed() const { return queue_ != nullptr; }
    // Out of whichever queue holds it (none: nothing to do).
    void disarm();

private:
    friend class DeadlineQueue;
    DeadlineQueue* queue_ = nullptr;
};

class DeadlineQueue {
public:
    static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

    explicit DeadlineQueue(int64_t duration_ms = 0) : duration_ms_(duration_ms) {}
    DeadlineQueue(const DeadlineQueue&) = delete;
    DeadlineQueue& operator=(const DeadlineQueue&) = delete;

    // Due `duration` after `now_ms`: moves to the end of this queue (out of any other). A
    // link in this queue already due then stays where it is (the links after it are due
    // then too): an upstream's every header line and piece re-arms its silence within the
    // same millisecond.
    void arm(DeadlineLink& link, int64_t now_ms) {
        if (link.queue_ == this && link.due_ms == now_ms + duration_ms_) return;
        if (link.queue_) link.queue_->disarm(link);
        link.due_ms = now_ms + duration_ms_;
        link.prev = tail_;
        link.next = nullptr;
        if (tail_) tail_->next = &link;
        else head_ = &link;
        tail_ = &link;
        link.queue_ = this;
    }

    // Takes the link out of this queue; a link in another queue (or none) stays as it is.
    void disarm(DeadlineLink& link) {
        if (link.queue_ != this) return;
        if (link.prev) link.prev->next = link.next;
        else head_ = link.next;
        if (link.next) link.next->prev = link.prev;
        else tail_ = link.prev;
        link.prev = link.next = nullptr;
        link.queue_ = nullptr;
    }

    // The first link due at or before `now_ms`, taken off the queue; nullptr when none is.
    DeadlineLink* take_due(int64_t now_ms) {
        if (!head_ || head_->due_ms > now_ms) return nullptr;
        DeadlineLink* due = head_;
        disarm(*due);
        return due;
    }

    int64_t next_due_ms() const { return head_ ? head_->due_ms : kNever; }
    bool empty() const { return head_ == nullptr; }

private:
    int64_t duration_ms_;
    DeadlineLink* head_ = nullptr;
    DeadlineLink* tail_ = nullptr;
};

inline void DeadlineLink::disarm() {
    if (queue_) queue_->disarm(*this);
}
