import Link from "next/link";

export default function NotFound() {
  return (
    <section className="empty" aria-labelledby="nf-title">
      <h2 id="nf-title">Page not found</h2>
      <p>There is no page at this address.</p>
      <div className="actions">
        <Link href="/" className="btn btn-primary">
          Go to the fleet
        </Link>
      </div>
    </section>
  );
}
