#[rocket::launch]
fn rocket() -> _ {
    auth_service::rocket()
}
