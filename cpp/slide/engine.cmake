# The engine's sources and compile flags, added to a target: the Python module
# (../../CMakeLists.txt) and the C++ unit tests (../tests/CMakeLists.txt) build
# the same engine the same way. Needs OpenMP found (OpenMP::OpenMP_CXX).
get_filename_component(SLIDE_CPP_DIR ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)

function(slide_add_engine target)
  file(GLOB SLIDE_SOURCES CONFIGURE_DEPENDS ${SLIDE_CPP_DIR}/slide/*.cpp)
  # Added below, only when the compiler can build them.
  list(REMOVE_ITEM SLIDE_SOURCES ${SLIDE_CPP_DIR}/slide/kernels_avx512_bf16.cpp
    ${SLIDE_CPP_DIR}/slide/kernels_amx_bf16.cpp)
  target_sources(${target} PRIVATE ${SLIDE_SOURCES})
  target_include_directories(${target} PRIVATE ${SLIDE_CPP_DIR})
  target_link_libraries(${target} PRIVATE OpenMP::OpenMP_CXX)

  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -O3 -Wall -Wextra -Wno-unused-parameter
      # No silent FMA contraction: explicit intrinsics only, so every kernel set
      # rounds as written and the generic set stays a faithful oracle.
      -ffp-contract=off)
    # Kernels for wider ISAs live in their own translation units and are only
    # called after a run-time CPU check, so the default build stays portable.
    set_source_files_properties(${SLIDE_CPP_DIR}/slide/kernels_avx2.cpp
      PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
    set_source_files_properties(${SLIDE_CPP_DIR}/slide/kernels_avx512.cpp
      PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512vl;-mavx512bw;-mavx512dq;-mfma")
    # Native bfloat16 kernels need GCC >= 10 / Clang >= 9 (AVX512_BF16) and
    # GCC >= 11 / Clang >= 12 (AMX); older compilers build without them
    # (precision="bfloat16" then runs the emulated kernels).
    include(CheckCXXCompilerFlag)
    set(SLIDE_AVX512BF16_FLAGS "-mavx512f;-mavx512vl;-mavx512bw;-mavx512dq;-mavx512bf16;-mfma")
    check_cxx_compiler_flag(-mavx512bf16 SLIDE_COMPILER_HAS_AVX512BF16)
    check_cxx_compiler_flag("-mamx-tile -mamx-bf16" SLIDE_COMPILER_HAS_AMX)
    if(SLIDE_COMPILER_HAS_AVX512BF16)
      target_sources(${target} PRIVATE ${SLIDE_CPP_DIR}/slide/kernels_avx512_bf16.cpp)
      set_source_files_properties(${SLIDE_CPP_DIR}/slide/kernels_avx512_bf16.cpp
        PROPERTIES COMPILE_OPTIONS "${SLIDE_AVX512BF16_FLAGS}")
      target_compile_definitions(${target} PRIVATE SLIDE_HAVE_AVX512BF16_KERNELS=1)
      if(SLIDE_COMPILER_HAS_AMX)
        target_sources(${target} PRIVATE ${SLIDE_CPP_DIR}/slide/kernels_amx_bf16.cpp)
        set_source_files_properties(${SLIDE_CPP_DIR}/slide/kernels_amx_bf16.cpp
          PROPERTIES COMPILE_OPTIONS "${SLIDE_AVX512BF16_FLAGS};-mamx-tile;-mamx-bf16")
        target_compile_definitions(${target} PRIVATE SLIDE_HAVE_AMX_KERNELS=1)
      endif()
    endif()
    if(SLIDE_NATIVE)
      target_compile_options(${target} PRIVATE -march=native)
    endif()
    if(SLIDE_SANITIZE)
      # -g: reports name file:line whatever the build type. float-cast-overflow
      # is not part of "undefined" in GCC; it catches float -> int conversions of
      # out-of-range values. tools/run_sanitized_tests.sh runs the tests with it.
      target_compile_options(${target} PRIVATE -fsanitize=address,undefined,float-cast-overflow
        -fno-omit-frame-pointer -g -O1)
      target_link_options(${target} PRIVATE -fsanitize=address,undefined,float-cast-overflow)
    endif()
  endif()
  if(SLIDE_DEBUG_CHECKS)
    target_compile_definitions(${target} PRIVATE SLIDE_DEBUG_CHECKS=1)
  endif()
endfunction()
