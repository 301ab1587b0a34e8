/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers, the form of
 * draft -10 and later), one policy named "default" per limited request:
 *
 *   RateLimit-Policy: "default";q=<burst events>;w=<seconds an empty bucket takes to fill>
 *   RateLimit:        "default";r=<whole tokens left>;t=<seconds until the bucket is full>
 *
 * The quota unit is events, which the draft has no name for; docs/api.md says so. The
 * wait a refused request needs is in Retry-After, not in `t`.
 */
import type { TakeOutcome } from './token-bucket';
import { windowS, type BucketLimit } from './token-bucket';

export function rateLimitHeaders(limit: BucketLimit, outcome: TakeOutcome): Record<string, string> {
  return {
    'ratelimit-policy': `"default";q=${limit.burstEvents};w=${windowS(limit)}`,
    ratelimit: `"default";r=${outcome.remaining};t=${outcome.fullInS}`,
  };
}
