// A zero-initialised array from calloc: large gradient buffers cost no time or
// resident memory until their pages are first written.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>

namespace slide {

template <typename T>
class ZeroedArray {
 public:
  ZeroedArray() = default;
  explicit ZeroedArray(int64_t n) : size_(n) {
    if (n > 0) {
      data_ = static_cast<T*>(std::calloc(static_cast<size_t>(n), sizeof(T)));
      if (!data_) throw std::bad_alloc();
    }
  }
  ~ZeroedArray() { std::free(data_); }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  ZeroedArray(ZeroedArray&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](int64_t i) { return data_[i]; }
  int64_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace slide
