# Warnings for our own targets: every warning is an error (issue 2). Probed so that gcc and clang both work.
include(CheckCCompilerFlag)
set(FY_C_WARNINGS -Wall -Wextra -Werror)
foreach(flag -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2 -Wno-format-nonliteral)
  string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    list(APPEND FY_C_WARNINGS ${flag})
  endif()
endforeach()

function(fy_target_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:${FY_C_WARNINGS}>
                                           $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>)
endfunction()
