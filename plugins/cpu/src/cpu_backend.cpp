#include <apr/backend.h>
