// The time on a branch's clock (the device's when the zone is not known yet), refreshed every ten
// seconds: one timer, cleared on unmount.
import { useEffect, useState } from 'preact/hooks';
import { timeIn } from '../lib/zoned.js';

export function Clock({ timezone }: { timezone?: string }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 10_000);
    return () => clearInterval(t);
  }, []);
  return (
    <time class="clock" dateTime={new Date(now).toISOString()}>
      {timezone ? timeIn(now, timezone) : new Date(now).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
    </time>
  );
}
