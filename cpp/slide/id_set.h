// A set of neuron ids for one sample's active set, sized by the set, not by the
// layer: open addressing with linear probing over a power-of-two table that
// doubles when half full. Each slot carries the sample's stamp, so clear() is
// O(1) (the table is wiped only when the stamp wraps around).
//
// The sampler used two arrays of n_labels entries per thread instead; at 10^6
// labels and more they no longer fit in cache and every membership test missed.
// Each member carries an int (the sampler: where its hit count is).
#pragma once

#include <cstdint>
#include <vector>

namespace slide {

class IdSet {
 public:
  explicit IdSet(int log2_capacity = 12) { resize(log2_capacity); }

  void clear() {
    size_ = 0;
    if (++stamp_ == 0) {  // wrapped around: old stamps could collide
      for (Slot& s : slots_) s.stamp = 0;
      stamp_ = 1;
    }
  }

  // Inserts id with `value`; false (and no change) if it was already a member.
  bool insert(int32_t id, int32_t value) { return find_or_insert(id, value) == nullptr; }

  // The value of member id; if id is not a member, inserts it with `value`
  // and returns null.
  int32_t* find_or_insert(int32_t id, int32_t value) {
    Slot& s = slot_of(id);
    if (s.stamp == stamp_) return &s.value;
    s = Slot{id, value, stamp_};
    if (2 * ++size_ > slots_.size() && shift_ > 1) grow();
    return nullptr;
  }

  bool contains(int32_t id) const {
    for (size_t i = hash(id); slots_[i].stamp == stamp_; i = (i + 1) & mask_)
      if (slots_[i].id == id) return true;
    return false;
  }

 private:
  struct Slot {
    int32_t id = 0;
    int32_t value = 0;
    uint32_t stamp = 0;
  };

  // The slot holding id, or the empty slot where it would go.
  Slot& slot_of(int32_t id) {
    size_t i = hash(id);
    while (slots_[i].stamp == stamp_ && slots_[i].id != id) i = (i + 1) & mask_;
    return slots_[i];
  }
  size_t hash(int32_t id) const {
    // Fibonacci hashing: the top bits of a multiply spread consecutive ids.
    return static_cast<size_t>((static_cast<uint32_t>(id) * 0x9E3779B1u) >> shift_);
  }

  void resize(int log2_capacity) {
    slots_.assign(size_t{1} << log2_capacity, Slot{});
    mask_ = slots_.size() - 1;
    shift_ = 32 - log2_capacity;
    stamp_ = 1;
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    const uint32_t old_stamp = stamp_;
    resize(32 - shift_ + 1);
    for (const Slot& s : old)
      if (s.stamp == old_stamp) slot_of(s.id) = Slot{s.id, s.value, stamp_};
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;  // members
  size_t mask_ = 0;
  int shift_ = 32;
  uint32_t stamp_ = 1;
};

}  // namespace slide
