//! The recipe store and the public views of it.
//!
//! The stored recipe carries an internal field (`secret_formula`) that must never leave the
//! service: every protocol answers from an explicit view built field by field, never by
//! serialising the stored struct (the book's "dangers of serializing POJOs").

use std::sync::LazyLock;

use serde::Serialize;

/// What the kitchen keeps: the public recipe plus what it must not tell.
#[derive(Debug)]
pub struct StoredRecipe {
    pub id: i32,
    pub name: &'static str,
    pub steps: &'static str,
    pub ingredients: Vec<StoredIngredient>,
    /// Internal only. No response of any protocol may contain it.
    pub secret_formula: &'static str,
}

#[derive(Debug)]
pub struct StoredIngredient {
    pub id: i32,
    pub name: &'static str,
    pub quantity: &'static str,
}

/// The internal value tests look for in responses (it must never appear).
pub const SECRET_FORMULA: &str =
    "2 parts garam masala, 1 part smoked paprika, a whisper of fenugreek";

static RECIPES: LazyLock<Vec<StoredRecipe>> = LazyLock::new(|| {
    vec![StoredRecipe {
        id: 42,
        name: "Chicken Tikka Masala",
        steps: "Throw it in a pot...",
        ingredients: vec![
            StoredIngredient {
                id: 1,
                name: "Chicken",
                quantity: "1 lb",
            },
            StoredIngredient {
                id: 2,
                name: "Sauce",
                quantity: "2 cups",
            },
        ],
        secret_formula: SECRET_FORMULA,
    }]
});

/// Every stored recipe.
pub fn all() -> &'static [StoredRecipe] {
    &RECIPES
}

/// The recipe with `id`, if the kitchen has it.
pub fn find(id: i64) -> Option<&'static StoredRecipe> {
    RECIPES.iter().find(|r| i64::from(r.id) == id)
}

/// The REST/JSON view (`GET /recipes/:id`).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RecipeView {
    pub id: i32,
    pub name: &'static str,
    pub steps: &'static str,
    pub ingredients: Vec<IngredientView>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct IngredientView {
    pub id: i32,
    pub name: &'static str,
    pub quantity: &'static str,
}

impl From<&StoredRecipe> for RecipeView {
    fn from(r: &StoredRecipe) -> Self {
        Self {
            id: r.id,
            name: r.name,
            steps: r.steps,
            ingredients: r
                .ingredients
                .iter()
                .map(|i| IngredientView {
                    id: i.id,
                    name: i.name,
                    quantity: i.quantity,
                })
                .collect(),
        }
    }
}

/// Parse a recipe id as the contracts carry it (a path segment, a GraphQL `ID`).
pub fn parse_id(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| format!("recipe id must be an integer, got {raw:?}"))
}
