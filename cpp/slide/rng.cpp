#include "slide/rng.h"

#include <cmath>

namespace slide {

double Rng::normal() {
  // u1 in (0, 1] so the log is finite.
  const double u1 = (static_cast<double>(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace slide
