//! gRPC: `recipe.RecipeService` from contracts/recipe.proto, served on the same port as HTTP
//! (HTTP/2 prior knowledge, as gRPC clients speak it without TLS).

use tonic::{Request, Response, Status};

use crate::model;

/// Generated from contracts/recipe.proto.
pub mod pb {
    tonic::include_proto!("recipe");
}

pub use pb::recipe_service_client::RecipeServiceClient;
pub use pb::recipe_service_server::{RecipeService, RecipeServiceServer};

#[derive(Debug, Default, Clone)]
pub struct RecipeGrpc;

#[tonic::async_trait]
impl RecipeService for RecipeGrpc {
    async fn get_recipe(
        &self,
        req: Request<pb::RecipeRequest>,
    ) -> Result<Response<pb::Recipe>, Status> {
        let id = req.into_inner().id;
        let r = model::find(i64::from(id))
            .ok_or_else(|| Status::not_found(format!("no recipe with id {id}")))?;
        Ok(Response::new(pb::Recipe {
            id: r.id,
            name: r.name.into(),
            steps: r.steps.into(),
            ingredients: r
                .ingredients
                .iter()
                .map(|i| pb::Ingredient {
                    id: i.id,
                    name: i.name.into(),
                    quantity: i.quantity.into(),
                })
                .collect(),
        }))
    }

    async fn get_meta_data(&self, _req: Request<pb::Empty>) -> Result<Response<pb::Meta>, Status> {
        Ok(Response::new(pb::Meta {
            pid: i32::try_from(lab_service_kit::pid()).unwrap_or(i32::MAX),
        }))
    }
}
