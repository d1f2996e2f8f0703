import Link from "next/link";

export function EmptyFleet() {
  return (
    <section className="empty" data-testid="empty-state" aria-labelledby="empty-title">
      <h2 id="empty-title">No models yet</h2>
      <p>
        Scan a host&apos;s model folder for <code>.gguf</code> files, or import the <code>model_registry.json</code> and <code>runtime_settings.json</code> from your previous setup.
      </p>
      <div className="actions">
        <Link href="/discover" className="btn btn-primary">
          Discover models
        </Link>
        <Link href="/discover#import" className="btn">
          Import registry files
        </Link>
      </div>
    </section>
  );
}
