// The bucket plan both sides derive from the tensor table and the bucket size: a rank's tensors
// concatenated in registration order, cut into buckets of `bucketBytes` (the last one shorter).

export interface BucketRange {
  bucket: number;
  /** Byte offset of the bucket in the rank's stream. */
  start: number;
  bytes: number;
}

export function bucketCount(totalBytes: number, bucketBytes: number): number {
  return Math.ceil(totalBytes / bucketBytes);
}

export function bucketRange(totalBytes: number, bucketBytes: number, bucket: number): BucketRange {
  const start = bucket * bucketBytes;
  if (bucket < 0 || start >= totalBytes) throw new RangeError(`bucket ${bucket} out of range`);
  return { bucket, start, bytes: Math.min(bucketBytes, totalBytes - start) };
}

export interface Segment {
  tensor: number;
  /** Offset inside the tensor. */
  tensorOffset: number;
  /** Offset inside the slot. */
  slotOffset: number;
  bytes: number;
}

/** The pieces of every tensor overlapping bucket `bucket`, in order. */
export function bucketSegments(
  tensorBytes: readonly number[],
  bucketBytes: number,
  bucket: number,
): Segment[] {
  const total = tensorBytes.reduce((sum, b) => sum + b, 0);
  const range = bucketRange(total, bucketBytes, bucket);
  const end = range.start + range.bytes;
  const segments: Segment[] = [];
  let offset = 0;
  tensorBytes.forEach((bytes, tensor) => {
    const from = Math.max(offset, range.start);
    const to = Math.min(offset + bytes, end);
    if (from < to)
      segments.push({
        tensor,
        tensorOffset: from - offset,
        slotOffset: from - range.start,
        bytes: to - from,
      });
    offset += bytes;
  });
  return segments;
}
