// The one place a guest's Request becomes a Provider call and the call's
// outcome a Reply: an errno, or the body encode_reply_body makes for the op.
//
// It checks again, whatever the codec already checked, what a provider must
// never be handed (defence in depth): names that are not one valid
// component (EINVAL; ENAMETOOLONG past kMaxName), symlink targets that are
// empty, hold NUL or are too long, reads and writes above kMaxData. On a
// read-only mount it refuses with EROFS every op that modifies
// (wire::modifies), every setattr, and every open or create that asks to
// write, truncate, append or create.
//
// dispatch never throws: a provider that runs out of memory answers ENOMEM,
// any other exception EIO, so one bad request cannot take the daemon down.
#pragma once

#include "daemon/vfs/provider.hpp"

namespace sandboxd::vfs {

wire::Reply dispatch(Provider& provider, const wire::Request& request, bool read_only);

// Hands each item's references back to the provider.
void forget(Provider& provider, const wire::Forget& forget);

}  // namespace sandboxd::vfs
