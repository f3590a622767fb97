//! The web console (`web/`, built by Vite into `web/dist`) served at `/`: the files as they are,
//! and `index.html` for any other path outside `/api` so that the console's own routes survive a
//! reload. Without a built console, `/` says how to build it instead of a bare 404.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::dev::{fn_service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};

/// Registers the console after every other route (it answers whatever they did not).
pub fn configure(cfg: &mut web::ServiceConfig, dir: &Path) {
    let index = dir.join("index.html");
    if !index.is_file() {
        let message = format!(
            "The Vigie web console is not built here ({} has no index.html): run `make web`, \
             or set VIGIE_CONSOLE_DIR. The API is at /api.",
            dir.display()
        );
        cfg.default_service(web::to(move || {
            let message = message.clone();
            async move {
                HttpResponse::NotFound()
                    .content_type("text/plain; charset=utf-8")
                    .body(message)
            }
        }));
        return;
    }
    cfg.service(
        Files::new("/", dir)
            .index_file("index.html")
            .use_etag(true)
            .use_last_modified(true)
            .default_handler(fn_service(move |req: ServiceRequest| {
                let index: PathBuf = index.clone();
                async move {
                    let (req, _) = req.into_parts();
                    let file = NamedFile::open_async(&index).await?;
                    let res = file.into_response(&req);
                    Ok(ServiceResponse::new(req, res))
                }
            })),
    );
}
